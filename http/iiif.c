/* SPDX-License-Identifier: MIT */
/* iiif.c: IIIF Image API 3.0 request parsing, resolution and info.json (see iiif.h).
 *
 * Parsing works from the right end of the path: the last segment says whether this is info.json
 * or an image request, and an image request has exactly four parameter segments after the
 * identifier. So an identifier that arrives with raw '/' (a client that did not encode it) still
 * parses, and nothing in the identifier can be mistaken for a parameter.
 *
 * Every number is read by our own digit loops, never strtod/strtoul: those accept signs,
 * spaces, exponents, "inf" and hexadecimal, and strtod follows the locale's decimal point. */
#include "iiif.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest parameter segment accepted (after decoding); far more than any valid one needs. */
#define SEG_MAX 128

/* Hard cap on output sides whatever the limits say: the render core's largest output. */
#define HARD_SIDE RND_RESAMPLE_MAX_SIDE

/* ---------------------------------------------------------------- helpers */

/* Copies at most 48 characters of `s` (n bytes) for an error message, replacing anything
 * unprintable, so that a hostile path cannot put control characters into a response. */
static void
quote(char dst[52], const char *s, size_t n)
{
    size_t i = 0;
    for (; i < n && i < 48; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (i < n) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Percent-decodes s[0, n) into dst (cap bytes including the NUL). Returns the decoded length,
 * -1 for a malformed escape, %00 or a control character (in a path they are only ever an
 * attack or a bug), -2 when the result does not fit. */
static long
pct_decode(const char *s, size_t n, char *dst, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) {
                return -1;
            }
            int hi = hexval((unsigned char)s[i + 1]);
            int lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            c = hi << 4 | lo;
            i += 2;
        }
        if (c < 0x20 || c == 0x7f) {
            return -1;
        }
        if (o + 1 >= cap) {
            return -2;
        }
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return (long)o;
}

/* Whether s[0, n) is well-formed UTF-8 (no overlong forms, surrogates or code points past
 * U+10FFFF): an identifier ends up in info.json and in headers, which need text. */
static int
valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len) {
            return 0;
        }
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return 0;
            }
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
            return 0;
        }
        i += len;
    }
    return 1;
}

/* A whole non-negative decimal integer s[0, n): digits only, at most UINT32_MAX. */
static int
parse_u32(const char *s, size_t n, uint32_t *out)
{
    uint64_t v = 0;
    if (n == 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > UINT32_MAX) {
            return -1;
        }
    }
    *out = (uint32_t)v;
    return 0;
}

/* A non-negative decimal number s[0, n): digits, optionally '.' and more digits (at most 12
 * digits on each side). */
static int
parse_dec(const char *s, size_t n, double *out)
{
    size_t i = 0, ni = 0, nf = 0;
    double ip = 0.0, fp = 0.0, scale = 1.0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, ni++) {
        ip = ip * 10.0 + (s[i] - '0');
    }
    if (ni == 0 || ni > 12) {
        return -1;
    }
    if (i < n) {
        if (s[i] != '.') {
            return -1;
        }
        for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, nf++) {
            fp = fp * 10.0 + (s[i] - '0');
            scale *= 10.0;
        }
        if (nf == 0 || nf > 12 || i != n) {
            return -1;
        }
    }
    *out = ip + fp / scale;
    return 0;
}

/* Splits s (NUL-terminated) at commas into exactly `n` fields; returns 0 or -1. */
static int
split_commas(const char *s, int n, const char **start, size_t *len)
{
    int k = 0;
    const char *p = s;
    for (;;) {
        const char *c = strchr(p, ',');
        if (k == n) {
            return -1;
        }
        start[k] = p;
        len[k] = c ? (size_t)(c - p) : strlen(p);
        k++;
        if (!c) {
            break;
        }
        p = c + 1;
    }
    return k == n ? 0 : -1;
}

/* ---------------------------------------------------------------- parameters */

static int
parse_region(const char *s, iiif_region *out, tsr_err *err)
{
    char q[52];
    quote(q, s, strlen(s));
    if (strcmp(s, "full") == 0) {
        out->kind = IIIF_REGION_FULL;
        return TSR_OK;
    }
    if (strcmp(s, "square") == 0) {
        out->kind = IIIF_REGION_SQUARE;
        return TSR_OK;
    }
    int pct = strncmp(s, "pct:", 4) == 0;
    const char *st[4];
    size_t ln[4];
    double v[4];
    if (split_commas(pct ? s + 4 : s, 4, st, ln) != 0) {
        return tsr_err_set(err, TSR_EINVAL,
                           "region '%s': expected full, square, x,y,w,h or pct:x,y,w,h", q);
    }
    for (int i = 0; i < 4; i++) {
        if (pct) {
            if (parse_dec(st[i], ln[i], &v[i]) != 0) {
                return tsr_err_set(err, TSR_EINVAL,
                                   "region '%s': percentages must be non-negative decimal "
                                   "numbers",
                                   q);
            }
        } else {
            uint32_t u;
            if (parse_u32(st[i], ln[i], &u) != 0) {
                return tsr_err_set(err, TSR_EINVAL,
                                   "region '%s': x,y,w,h must be non-negative integers "
                                   "(at most %u)",
                                   q, UINT32_MAX);
            }
            v[i] = (double)u;
        }
    }
    if (!(v[2] > 0.0) || !(v[3] > 0.0)) {
        return tsr_err_set(err, TSR_EINVAL, "region '%s': width and height must be > 0", q);
    }
    out->kind = pct ? IIIF_REGION_PCT : IIIF_REGION_PIXELS;
    out->x = v[0];
    out->y = v[1];
    out->w = v[2];
    out->h = v[3];
    return TSR_OK;
}

static int
parse_size(const char *s, iiif_size *out, tsr_err *err)
{
    char q[52];
    quote(q, s, strlen(s));
    iiif_size z = {0};
    const char *p = s;
    if (*p == '^') {
        z.upscale = 1;
        p++;
    }
    if (strcmp(p, "max") == 0) {
        z.kind = IIIF_SIZE_MAX;
        *out = z;
        return TSR_OK;
    }
    if (strcmp(p, "full") == 0) {
        return tsr_err_set(err, TSR_EINVAL, "size '%s': 'full' is IIIF 2; IIIF 3 uses 'max'", q);
    }
    if (strncmp(p, "pct:", 4) == 0) {
        if (parse_dec(p + 4, strlen(p + 4), &z.pct) != 0) {
            return tsr_err_set(err, TSR_EINVAL,
                               "size '%s': pct:n needs a non-negative decimal number", q);
        }
        if (!(z.pct > 0.0)) {
            return tsr_err_set(err, TSR_EINVAL, "size '%s': pct:n must be > 0", q);
        }
        if (z.pct > 100.0 && !z.upscale) {
            return tsr_err_set(err, TSR_EINVAL,
                               "size '%s': pct:n above 100 needs the upscaling form ^pct:n", q);
        }
        z.kind = IIIF_SIZE_PCT;
        *out = z;
        return TSR_OK;
    }
    int confined = 0;
    if (*p == '!') {
        confined = 1;
        p++;
    }
    const char *st[2];
    size_t ln[2];
    if (split_commas(p, 2, st, ln) != 0 || (ln[0] == 0 && ln[1] == 0)) {
        return tsr_err_set(err, TSR_EINVAL,
                           "size '%s': expected max, w,, ,h, pct:n, w,h or !w,h (optionally "
                           "after ^)",
                           q);
    }
    if (confined && (ln[0] == 0 || ln[1] == 0)) {
        return tsr_err_set(err, TSR_EINVAL, "size '%s': !w,h needs both w and h", q);
    }
    if ((ln[0] && parse_u32(st[0], ln[0], &z.w) != 0) ||
        (ln[1] && parse_u32(st[1], ln[1], &z.h) != 0)) {
        return tsr_err_set(err, TSR_EINVAL, "size '%s': w and h must be positive integers", q);
    }
    if ((ln[0] && z.w == 0) || (ln[1] && z.h == 0)) {
        return tsr_err_set(err, TSR_EINVAL, "size '%s': w and h must be > 0", q);
    }
    z.kind = confined ? IIIF_SIZE_CONFINED
                      : (ln[0] == 0 ? IIIF_SIZE_H : (ln[1] == 0 ? IIIF_SIZE_W : IIIF_SIZE_WH));
    *out = z;
    return TSR_OK;
}

static int
parse_rotation(const char *s, int *mirror, tsr_err *err)
{
    char q[52];
    quote(q, s, strlen(s));
    const char *p = s;
    int m = 0;
    double deg;
    if (*p == '!') {
        m = 1;
        p++;
    }
    if (parse_dec(p, strlen(p), &deg) != 0) {
        return tsr_err_set(err, TSR_EINVAL,
                           "rotation '%s': expected a number of degrees, optionally after '!'", q);
    }
    if (deg > 360.0) {
        return tsr_err_set(err, TSR_EINVAL, "rotation '%s': must be within 0..360", q);
    }
    if (deg != 0.0 && deg != 360.0) {
        return tsr_err_set(err, TSR_EINVAL, "rotation %s not supported (only 0 and !0)", q);
    }
    *mirror = m;
    return TSR_OK;
}

static int
parse_quality_format(const char *s, iiif_quality *quality, rnd_format *format, tsr_err *err)
{
    char q[52];
    quote(q, s, strlen(s));
    const char *dot = strchr(s, '.');
    if (!dot) {
        return tsr_err_set(err, TSR_EINVAL, "'%s': expected {quality}.{format}, e.g. default.jpg",
                           q);
    }
    size_t nq = (size_t)(dot - s);
    const char *f = dot + 1;
    char qq[52], qf[52];
    quote(qq, s, nq);
    quote(qf, f, strlen(f));
    if (nq == 7 && memcmp(s, "default", 7) == 0) {
        *quality = IIIF_QUALITY_DEFAULT;
    } else if (nq == 4 && memcmp(s, "gray", 4) == 0) {
        *quality = IIIF_QUALITY_GRAY;
    } else if ((nq == 5 && memcmp(s, "color", 5) == 0) ||
               (nq == 7 && memcmp(s, "bitonal", 7) == 0)) {
        return tsr_err_set(err, TSR_EINVAL, "quality '%s' not supported (supported: default, gray)",
                           qq);
    } else {
        return tsr_err_set(err, TSR_EINVAL, "unknown quality '%s' (supported: default, gray)", qq);
    }
    if (strcmp(f, "jpg") == 0) {
        *format = RND_FMT_JPEG;
    } else if (strcmp(f, "png") == 0) {
        *format = RND_FMT_PNG;
    } else {
        return tsr_err_set(err, TSR_EINVAL, "format '%s' not supported (supported: jpg, png)", qf);
    }
    return TSR_OK;
}

/* ---------------------------------------------------------------- iiif_parse */

/* Decodes the identifier s[0, n) into out->identifier. */
static int
set_identifier(iiif_req *out, const char *s, size_t n, tsr_err *err)
{
    char q[52];
    quote(q, s, n);
    if (n == 0) {
        return tsr_err_set(err, TSR_EINVAL, "missing identifier");
    }
    long len = pct_decode(s, n, out->identifier, sizeof out->identifier);
    if (len == -2) {
        return tsr_err_set(err, TSR_EINVAL, "identifier '%s' is longer than %d bytes", q,
                           IIIF_ID_MAX - 1);
    }
    if (len < 0) {
        return tsr_err_set(err, TSR_EINVAL,
                           "identifier '%s': malformed percent-encoding or a control character", q);
    }
    if (len == 0) {
        return tsr_err_set(err, TSR_EINVAL, "missing identifier");
    }
    if (!valid_utf8((const unsigned char *)out->identifier, (size_t)len)) {
        return tsr_err_set(err, TSR_EINVAL, "identifier '%s' is not UTF-8 once decoded", q);
    }
    return TSR_OK;
}

int
iiif_parse(const char *path, iiif_req *out, tsr_err *err)
{
    static const char *const names[4] = {"region", "size", "rotation", "quality.format"};
    static const char usage[] = "expected {identifier}/info.json or "
                                "{identifier}/{region}/{size}/{rotation}/{quality}.{format}";

    if (!path || !out) {
        return tsr_err_set(err, TSR_EINVAL, "missing IIIF path");
    }
    if (*path == '/') {
        path++;
    }
    size_t n = strlen(path);
    char q[52];
    quote(q, path, n);
    if (strpbrk(path, "?#")) {
        return tsr_err_set(err, TSR_EINVAL, "'%s': the path must not carry a query or fragment", q);
    }

    /* Work on a copy so that *out stays untouched on failure. */
    iiif_req r;
    memset(&r, 0, sizeof r);
    const char *last = strrchr(path, '/');
    if (!last || last + 1 == path + n) {
        /* "id" or "id/": the base URI, redirected to info.json. */
        size_t idn = last ? (size_t)(last - path) : n;
        if (last && memchr(path, '/', idn)) {
            return tsr_err_set(err, TSR_EINVAL, "'%s': %s", q, usage);
        }
        int rc = set_identifier(&r, path, idn, err);
        if (rc != TSR_OK) {
            return rc;
        }
        r.kind = IIIF_REQ_BASE;
        *out = r;
        return TSR_OK;
    }
    if (strcmp(last + 1, "info.json") == 0) {
        int rc = set_identifier(&r, path, (size_t)(last - path), err);
        if (rc != TSR_OK) {
            return rc;
        }
        r.kind = IIIF_REQ_INFO;
        *out = r;
        return TSR_OK;
    }

    /* Four parameter segments, found from the right. */
    const char *seg[4];
    size_t segn[4];
    const char *end = path + n;
    for (int i = 3; i >= 0; i--) {
        const char *slash = end;
        while (slash > path && slash[-1] != '/') {
            slash--;
        }
        if (slash == path) {
            return tsr_err_set(err, TSR_EINVAL, "'%s': %s", q, usage);
        }
        seg[i] = slash;
        segn[i] = (size_t)(end - slash);
        end = slash - 1; /* the '/' before this segment */
    }
    int rc = set_identifier(&r, path, (size_t)(end - path), err);
    if (rc != TSR_OK) {
        return rc;
    }

    char dec[4][SEG_MAX];
    for (int i = 0; i < 4; i++) {
        char qs[52];
        quote(qs, seg[i], segn[i]);
        if (segn[i] == 0) {
            return tsr_err_set(err, TSR_EINVAL, "empty %s in '%s': %s", names[i], q, usage);
        }
        long len = pct_decode(seg[i], segn[i], dec[i], sizeof dec[i]);
        if (len < 0) {
            return tsr_err_set(err, TSR_EINVAL, "%s '%s': %s", names[i], qs,
                               len == -2 ? "too long" : "malformed percent-encoding");
        }
    }
    rc = parse_region(dec[0], &r.region, err);
    if (rc == TSR_OK) {
        rc = parse_size(dec[1], &r.size, err);
    }
    if (rc == TSR_OK) {
        rc = parse_rotation(dec[2], &r.mirror, err);
    }
    if (rc == TSR_OK) {
        rc = parse_quality_format(dec[3], &r.quality, &r.format, err);
    }
    if (rc != TSR_OK) {
        return rc;
    }
    r.kind = IIIF_REQ_IMAGE;
    *out = r;
    return TSR_OK;
}

/* ---------------------------------------------------------------- iiif_resolve */

void
iiif_limits_default(iiif_limits *l)
{
    l->max_width = 16384;
    l->max_height = 16384;
    l->max_area = UINT64_C(1) << 28;
}

/* One axis of a percentage region: the edges round to whole pixels and are clipped. Returns the
 * length (0: nothing left). */
static uint32_t
pct_axis(double p0, double pl, uint32_t len, uint32_t *start)
{
    double a = round(p0 * len / 100.0);
    double b = round((p0 + pl) * len / 100.0);
    if (b > len) {
        b = len;
    }
    if (a >= len || b <= a) {
        return 0;
    }
    *start = (uint32_t)a;
    return (uint32_t)(b - a);
}

/* Effective limits: zeros become the hard cap, and a missing max_height follows max_width. */
typedef struct eff_limits {
    double mw, mh, ma;
    int has_w, has_h, has_a;
} eff_limits;

static eff_limits
effective(const iiif_limits *lim)
{
    eff_limits e = {HARD_SIDE, HARD_SIDE, 0.0, 0, 0, 0};
    uint32_t mh = lim->max_height ? lim->max_height : lim->max_width;
    if (lim->max_width && lim->max_width < HARD_SIDE) {
        e.mw = lim->max_width;
        e.has_w = 1;
    }
    if (mh && mh < HARD_SIDE) {
        e.mh = mh;
        e.has_h = 1;
    }
    if (lim->max_area) {
        e.ma = (double)lim->max_area;
        e.has_a = 1;
    }
    return e;
}

/* The largest scale <= `cap` (cap <= 0: no cap) at which a rw x rh region fits the limits. */
static double
fit_scale(double rw, double rh, const eff_limits *e, double cap)
{
    double s = fmin(e->mw / rw, e->mh / rh);
    if (e->has_a) {
        s = fmin(s, sqrt(e->ma / (rw * rh)));
    }
    if (cap > 0.0) {
        s = fmin(s, cap);
    }
    return s;
}

/* Scales a side by s, rounding down (with a little slack for the exact cases, where rw * (w /
 * rw) may come out a hair below w), at least 1. */
static uint32_t
scale_floor(double side, double s)
{
    double v = floor(side * s + 1e-7);
    return v < 1.0 ? 1u : (uint32_t)v;
}

/* A side in pixels, at least 1 (a 1000 x 17 region at width 16 is 16 x 1, not 16 x 0) and at
 * most UINT32_MAX (the limits check comes after). */
static uint32_t
to_side(double v)
{
    v = round(v);
    return v < 1.0 ? 1u : (v > 4294967295.0 ? UINT32_MAX : (uint32_t)v);
}

/* The side that keeps the region's aspect ratio when the other is given ("w," and ",h"): the
 * exact value other_r * given / given_r rounded, except that when `given` is the size a pyramid
 * level gives the region, ceil(given_r / 2^k), and the level's ceil(other_r / 2^k) is within a
 * pixel of exact, that is taken: a tile requested in this form (as IIIF 2 clients do) then
 * comes out exactly the size of the tile, and no answer is ever more than a pixel off. */
static uint32_t
derived_side(double given_r, uint32_t given, double other_r)
{
    const double exact = other_r * given / given_r;
    for (int k = 0; k < 32; k++) {
        const double s = ldexp(1.0, k);
        if (given_r / s < (double)given - 1.0) {
            break; /* ceil(given_r / s) < given from here on */
        }
        if (ceil(given_r / s) == (double)given) {
            double t = ceil(other_r / s);
            if (fabs(t - exact) < 1.0) {
                return to_side(t);
            }
        }
    }
    return to_side(exact);
}

int
iiif_resolve(const iiif_req *r, uint32_t w0, uint32_t h0, const iiif_limits *lim, iiif_plan *plan,
             tsr_err *err)
{
    iiif_limits dl;
    if (!r || r->kind != IIIF_REQ_IMAGE) {
        return tsr_err_set(err, TSR_EINVAL, "not an IIIF image request");
    }
    if (w0 == 0 || h0 == 0) {
        return tsr_err_set(err, TSR_EINVAL, "image has no pixels");
    }
    if (!lim) {
        iiif_limits_default(&dl);
        lim = &dl;
    }

    /* Region, in level-0 pixels. */
    uint32_t x = 0, y = 0, w = w0, h = h0;
    const iiif_region *g = &r->region;
    switch (g->kind) {
    case IIIF_REGION_FULL:
        break;
    case IIIF_REGION_SQUARE:
        w = h = w0 < h0 ? w0 : h0;
        x = (w0 - w) / 2;
        y = (h0 - h) / 2;
        break;
    case IIIF_REGION_PIXELS:
        if (g->x >= w0 || g->y >= h0) {
            return tsr_err_set(err, TSR_EINVAL,
                               "region %.0f,%.0f,%.0f,%.0f lies outside the %ux%u image", g->x,
                               g->y, g->w, g->h, (unsigned)w0, (unsigned)h0);
        }
        x = (uint32_t)g->x;
        y = (uint32_t)g->y;
        w = g->w < (double)(w0 - x) ? (uint32_t)g->w : w0 - x;
        h = g->h < (double)(h0 - y) ? (uint32_t)g->h : h0 - y;
        break;
    case IIIF_REGION_PCT:
        w = pct_axis(g->x, g->w, w0, &x);
        h = pct_axis(g->y, g->h, h0, &y);
        if (w == 0 || h == 0) {
            return tsr_err_set(err, TSR_EINVAL,
                               "region pct:%g,%g,%g,%g covers no whole pixel of the %ux%u image",
                               g->x, g->y, g->w, g->h, (unsigned)w0, (unsigned)h0);
        }
        break;
    default:
        return tsr_err_set(err, TSR_EINVAL, "invalid region");
    }

    /* Size. */
    const iiif_size *z = &r->size;
    const eff_limits e = effective(lim);
    const double rw = w, rh = h;
    const int up = z->upscale;
    const char *hint = " (the ^ form allows upscaling)";
    uint32_t ow = 0, oh = 0;
    double s;
    switch (z->kind) {
    case IIIF_SIZE_MAX:
        /* "max" never upscales; "^max" grows the region up to the limits, and without limits
         * (nothing to grow to) is "max". */
        s = fit_scale(rw, rh, &e, (up && (e.has_w || e.has_h || e.has_a)) ? 0.0 : 1.0);
        if (s == 1.0) {
            ow = w;
            oh = h;
        } else {
            ow = scale_floor(rw, s);
            oh = scale_floor(rh, s);
        }
        break;
    case IIIF_SIZE_W:
        if (!up && z->w > w) {
            return tsr_err_set(err, TSR_EINVAL, "size width %u exceeds the region width %u%s",
                               (unsigned)z->w, (unsigned)w, hint);
        }
        ow = z->w;
        oh = derived_side(rw, z->w, rh);
        break;
    case IIIF_SIZE_H:
        if (!up && z->h > h) {
            return tsr_err_set(err, TSR_EINVAL, "size height %u exceeds the region height %u%s",
                               (unsigned)z->h, (unsigned)h, hint);
        }
        oh = z->h;
        ow = derived_side(rh, z->h, rw);
        break;
    case IIIF_SIZE_PCT:
        if (!up && z->pct > 100.0) {
            return tsr_err_set(err, TSR_EINVAL, "size pct:%g exceeds 100%s", z->pct, hint);
        }
        ow = to_side(rw * z->pct / 100.0);
        oh = to_side(rh * z->pct / 100.0);
        break;
    case IIIF_SIZE_WH:
        if (!up && (z->w > w || z->h > h)) {
            return tsr_err_set(err, TSR_EINVAL, "size %ux%u exceeds the %ux%u region%s",
                               (unsigned)z->w, (unsigned)z->h, (unsigned)w, (unsigned)h, hint);
        }
        ow = z->w;
        oh = z->h;
        break;
    case IIIF_SIZE_CONFINED:
        s = fmin(z->w / rw, z->h / rh);
        if (!up && s > 1.0) {
            s = 1.0;
        }
        /* The bounding side comes out exact; the other rounds, and never past its bound. */
        ow = to_side(fmin(rw * s, z->w));
        oh = to_side(fmin(rh * s, z->h));
        break;
    default:
        return tsr_err_set(err, TSR_EINVAL, "invalid size");
    }
    if (ow > e.mw || oh > e.mh) {
        return tsr_err_set(err, TSR_EINVAL, "size %ux%u exceeds the server's limit of %.0fx%.0f",
                           (unsigned)ow, (unsigned)oh, e.mw, e.mh);
    }
    if (e.has_a && (double)ow * (double)oh > e.ma) {
        return tsr_err_set(err, TSR_EINVAL,
                           "size %ux%u exceeds the server's limit of %.0f pixels (maxArea)",
                           (unsigned)ow, (unsigned)oh, e.ma);
    }

    iiif_plan p = {x, y, w, h, ow, oh, r->mirror, r->quality, r->format};
    *plan = p;
    return TSR_OK;
}

/* ---------------------------------------------------------------- tiles, canonical form */

int
iiif_plan_tile(const iiif_plan *p, uint32_t w0, uint32_t h0, uint32_t tile, int *level,
               uint32_t *col, uint32_t *row)
{
    if (!p) {
        return 0;
    }
    int levels = rnd_level_count(w0, h0, tile);
    if (levels < 1) {
        return 0;
    }
    for (int k = 0; k < levels; k++) {
        const uint64_t s = UINT64_C(1) << k, span = (uint64_t)tile << k;
        if (p->x % span != 0 || p->y % span != 0 || p->x >= w0 || p->y >= h0) {
            continue;
        }
        const uint64_t tw = w0 - p->x < span ? w0 - p->x : span;
        const uint64_t th = h0 - p->y < span ? h0 - p->y : span;
        if (p->w != tw || p->h != th || p->out_w != (tw + s - 1) / s ||
            p->out_h != (th + s - 1) / s) {
            continue;
        }
        *level = k;
        *col = (uint32_t)(p->x / span);
        *row = (uint32_t)(p->y / span);
        return 1;
    }
    return 0;
}

int
iiif_canonical(const iiif_plan *p, uint32_t w0, uint32_t h0, char *buf, size_t size)
{
    char region[48], sz[32];
    if (size > 0) {
        buf[0] = '\0';
    }
    if (!p || !buf) {
        return TSR_EINVAL;
    }
    if (p->x == 0 && p->y == 0 && p->w == w0 && p->h == h0) {
        snprintf(region, sizeof region, "full");
    } else {
        snprintf(region, sizeof region, "%u,%u,%u,%u", (unsigned)p->x, (unsigned)p->y,
                 (unsigned)p->w, (unsigned)p->h);
    }
    /* An output larger than the region on either side is only valid with '^' (IIIF 3.0 4.7, as
     * amended by IIIF/api#1824): without it the canonical URL would be refused, here and by any
     * other server. */
    if (p->out_w == p->w && p->out_h == p->h) {
        snprintf(sz, sizeof sz, "max");
    } else {
        snprintf(sz, sizeof sz, "%s%u,%u", p->out_w > p->w || p->out_h > p->h ? "^" : "",
                 (unsigned)p->out_w, (unsigned)p->out_h);
    }
    int n = snprintf(buf, size, "%s/%s/%s/%s.%s", region, sz, p->mirror ? "!0" : "0",
                     p->quality == IIIF_QUALITY_GRAY ? "gray" : "default",
                     p->format == RND_FMT_PNG ? "png" : "jpg");
    if (n < 0 || (size_t)n >= size) {
        if (size > 0) {
            buf[0] = '\0';
        }
        return TSR_ELIMIT;
    }
    return TSR_OK;
}

const char *
iiif_format_mime(rnd_format f)
{
    return f == RND_FMT_PNG ? "image/png" : "image/jpeg";
}

/* ---------------------------------------------------------------- info.json */

/* Adds `v` (consumed) to `o` under `key`; returns 0, or -1 when v is NULL or adding fails. */
static int
put(json_t *o, const char *key, json_t *v)
{
    return (v && json_object_set_new(o, key, v) == 0) ? 0 : -1;
}

static int
push(json_t *a, json_t *v)
{
    return (v && json_array_append_new(a, v) == 0) ? 0 : -1;
}

int
iiif_info_json_limits(const char *id_url, uint32_t w0, uint32_t h0, uint32_t tile, int levels,
                      const iiif_limits *lim, char **out)
{
    if (!id_url || !*id_url || !out || w0 == 0 || h0 == 0 || tile < RND_TILE_MIN ||
        tile > RND_TILE_MAX || levels < 1 || levels > RND_LEVEL_MAX + 1) {
        return TSR_EINVAL;
    }
    json_t *id = json_string(id_url); /* NULL when not UTF-8 */
    if (!id) {
        return TSR_EINVAL;
    }
    eff_limits e = {0};
    if (lim) {
        e = effective(lim);
    }
    int bad = 0;
    json_t *root = json_object();
    json_t *tiles = json_array(), *t = json_object(), *factors = json_array();
    json_t *sizes = json_array();
    bad |= !root || !tiles || !t || !factors || !sizes;
    if (!bad) {
        bad |= put(root, "@context", json_string("http://iiif.io/api/image/3/context.json"));
        bad |= put(root, "id", id);
        id = NULL;
        bad |= put(root, "type", json_string("ImageService3"));
        bad |= put(root, "protocol", json_string("http://iiif.io/api/image"));
        bad |= put(root, "profile", json_string("level1"));
        bad |= put(root, "width", json_integer(w0));
        bad |= put(root, "height", json_integer(h0));
        if (lim && e.has_w) {
            bad |= put(root, "maxWidth", json_integer((json_int_t)e.mw));
        }
        if (lim && lim->max_height && e.has_h) {
            bad |= put(root, "maxHeight", json_integer((json_int_t)e.mh));
        }
        if (lim && e.has_a) {
            bad |= put(root, "maxArea", json_integer((json_int_t)lim->max_area));
        }
        for (int k = levels - 1; k >= 0; k--) {
            uint32_t lw, lh;
            rnd_level_size(w0, h0, k, &lw, &lh);
            if (lim && (lw > e.mw || lh > e.mh || (e.has_a && (double)lw * lh > e.ma))) {
                continue;
            }
            json_t *one = json_object();
            bad |=
                !one || put(one, "width", json_integer(lw)) || put(one, "height", json_integer(lh));
            bad |= push(sizes, one);
        }
        for (int k = 0; k < levels; k++) {
            bad |= push(factors, json_integer((json_int_t)1 << k));
        }
        bad |= put(t, "width", json_integer(tile));
        bad |= put(t, "height", json_integer(tile));
        bad |= put(t, "scaleFactors", factors);
        factors = NULL;
        bad |= push(tiles, t);
        t = NULL;
        if (json_array_size(sizes) > 0) {
            bad |= put(root, "sizes", sizes);
            sizes = NULL;
        }
        bad |= put(root, "tiles", tiles);
        tiles = NULL;
        json_t *fmts = json_array();
        bad |= !fmts || push(fmts, json_string("png"));
        bad |= put(root, "extraFormats", fmts);
        json_t *quals = json_array();
        bad |= !quals || push(quals, json_string("gray"));
        bad |= put(root, "extraQualities", quals);
        static const char *const features[] = {"mirroring", "regionByPct", "sizeByConfinedWh",
                                               "sizeByPct", "sizeUpscaling"};
        json_t *feats = json_array();
        bad |= !feats;
        for (size_t i = 0; feats && i < sizeof features / sizeof *features; i++) {
            bad |= push(feats, json_string(features[i]));
        }
        bad |= put(root, "extraFeatures", feats);
    }
    char *text = bad ? NULL : json_dumps(root, JSON_INDENT(2));
    json_decref(id);
    json_decref(root);
    json_decref(tiles);
    json_decref(t);
    json_decref(factors);
    json_decref(sizes);
    if (!text) {
        return TSR_ENOMEM;
    }
    *out = text;
    return TSR_OK;
}

int
iiif_info_json(const char *id_url, uint32_t w0, uint32_t h0, uint32_t tile, int levels, char **out)
{
    return iiif_info_json_limits(id_url, w0, h0, tile, levels, NULL, out);
}

void
iiif_free(char *s)
{
    free(s);
}
