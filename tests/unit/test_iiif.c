/* SPDX-License-Identifier: MIT */
/* test_iiif.c: IIIF Image API 3.0 requests (http/iiif.h): the grammar, every refused form,
 * resolution against odd image sizes and limits, tile detection against rnd_tile_rect with the
 * URLs OpenSeadragon builds, the canonical form and info.json. */
#include "tsr_test.h"

#include "iiif.h"

#include <jansson.h>
#include <math.h>

static iiif_req
parse_ok(const char *path)
{
    iiif_req r;
    tsr_err err = {0};
    if (iiif_parse(path, &r, &err) != TSR_OK) {
        fail_msg("'%s' rejected: %s", path, err.msg);
    }
    return r;
}

static iiif_plan
plan_of(const char *path, uint32_t w0, uint32_t h0, const iiif_limits *lim)
{
    iiif_req r = parse_ok(path);
    iiif_plan p;
    tsr_err err = {0};
    if (iiif_resolve(&r, w0, h0, lim, &p, &err) != TSR_OK) {
        fail_msg("'%s' on %ux%u not resolved: %s", path, w0, h0, err.msg);
    }
    return p;
}

static void
assert_plan(const iiif_plan *p, uint32_t x, uint32_t y, uint32_t w, uint32_t h, uint32_t ow,
            uint32_t oh, const char *what)
{
    if (p->x != x || p->y != y || p->w != w || p->h != h || p->out_w != ow || p->out_h != oh) {
        fail_msg("%s: got region %u,%u,%u,%u size %ux%u; want %u,%u,%u,%u size %ux%u", what, p->x,
                 p->y, p->w, p->h, p->out_w, p->out_h, x, y, w, h, ow, oh);
    }
}

/* ---------------------------------------------------------------- grammar */

static void
parse_image_forms(void **state)
{
    (void)state;
    iiif_req r = parse_ok("abc/full/max/0/default.jpg");
    assert_int_equal(r.kind, IIIF_REQ_IMAGE);
    assert_string_equal(r.identifier, "abc");
    assert_int_equal(r.region.kind, IIIF_REGION_FULL);
    assert_int_equal(r.size.kind, IIIF_SIZE_MAX);
    assert_int_equal(r.size.upscale, 0);
    assert_int_equal(r.mirror, 0);
    assert_int_equal(r.quality, IIIF_QUALITY_DEFAULT);
    assert_int_equal(r.format, RND_FMT_JPEG);

    r = parse_ok("/abc/square/^max/!0/gray.png");
    assert_string_equal(r.identifier, "abc");
    assert_int_equal(r.region.kind, IIIF_REGION_SQUARE);
    assert_int_equal(r.size.kind, IIIF_SIZE_MAX);
    assert_int_equal(r.size.upscale, 1);
    assert_int_equal(r.mirror, 1);
    assert_int_equal(r.quality, IIIF_QUALITY_GRAY);
    assert_int_equal(r.format, RND_FMT_PNG);

    r = parse_ok("abc/0,10,4294967295,7/256,/0/default.jpg");
    assert_int_equal(r.region.kind, IIIF_REGION_PIXELS);
    assert_true(r.region.x == 0 && r.region.y == 10 && r.region.w == 4294967295.0 &&
                r.region.h == 7);
    assert_int_equal(r.size.kind, IIIF_SIZE_W);
    assert_int_equal(r.size.w, 256);

    r = parse_ok("abc/pct:41.6,7.5,40,70/,128/360/default.jpg");
    assert_int_equal(r.region.kind, IIIF_REGION_PCT);
    assert_true(fabs(r.region.x - 41.6) < 1e-12 && r.region.y == 7.5 && r.region.w == 40 &&
                r.region.h == 70);
    assert_int_equal(r.size.kind, IIIF_SIZE_H);
    assert_int_equal(r.size.h, 128);

    r = parse_ok("abc/full/pct:12.5/0.0/default.jpg");
    assert_int_equal(r.size.kind, IIIF_SIZE_PCT);
    assert_true(r.size.pct == 12.5);
    r = parse_ok("abc/full/^pct:250/0/default.jpg");
    assert_int_equal(r.size.upscale, 1);
    assert_true(r.size.pct == 250.0);

    r = parse_ok("abc/full/300,200/0/default.jpg");
    assert_int_equal(r.size.kind, IIIF_SIZE_WH);
    assert_int_equal(r.size.w, 300);
    assert_int_equal(r.size.h, 200);
    r = parse_ok("abc/full/!300,200/0/default.jpg");
    assert_int_equal(r.size.kind, IIIF_SIZE_CONFINED);
    assert_int_equal(r.size.upscale, 0);
    r = parse_ok("abc/full/^!300,200/0/default.jpg");
    assert_int_equal(r.size.kind, IIIF_SIZE_CONFINED);
    assert_int_equal(r.size.upscale, 1);
    r = parse_ok("abc/full/^300,/0/default.jpg");
    assert_int_equal(r.size.kind, IIIF_SIZE_W);
    assert_int_equal(r.size.upscale, 1);
    r = parse_ok("abc/full/^,300/!360/default.jpg");
    assert_int_equal(r.size.kind, IIIF_SIZE_H);
    assert_int_equal(r.mirror, 1);

    /* Percent-encoded parameters (a client that escapes '!', '^' and ','). */
    r = parse_ok("abc/full/%5E%21300%2C200/%210/default.jpg");
    assert_int_equal(r.size.kind, IIIF_SIZE_CONFINED);
    assert_int_equal(r.size.upscale, 1);
    assert_int_equal(r.mirror, 1);
}

static void
parse_identifiers(void **state)
{
    (void)state;
    iiif_req r = parse_ok("1.2.3%2F4.5.6%2F7.8.9%2F1/info.json");
    assert_int_equal(r.kind, IIIF_REQ_INFO);
    assert_string_equal(r.identifier, "1.2.3/4.5.6/7.8.9/1");

    /* Raw slashes: the parameters are found from the right. */
    r = parse_ok("1.2.3/4.5.6/full/max/0/default.jpg");
    assert_int_equal(r.kind, IIIF_REQ_IMAGE);
    assert_string_equal(r.identifier, "1.2.3/4.5.6");
    r = parse_ok("a/b/info.json");
    assert_string_equal(r.identifier, "a/b");

    r = parse_ok("%F0%9F%A6%B4%E2%82%AC/info.json");
    assert_string_equal(r.identifier, "\xf0\x9f\xa6\xb4\xe2\x82\xac");
    r = parse_ok("caf%C3%A9%20x+y");
    assert_int_equal(r.kind, IIIF_REQ_BASE);
    assert_string_equal(r.identifier, "caf\xc3\xa9 x+y");
    r = parse_ok("/abc/");
    assert_int_equal(r.kind, IIIF_REQ_BASE);
    assert_string_equal(r.identifier, "abc");

    /* The longest identifier that fits, and one byte more. */
    char path[2 * IIIF_ID_MAX];
    memset(path, 'x', IIIF_ID_MAX - 1);
    strcpy(path + IIIF_ID_MAX - 1, "/info.json");
    r = parse_ok(path);
    assert_int_equal(strlen(r.identifier), IIIF_ID_MAX - 1);
    memset(path, 'x', IIIF_ID_MAX);
    strcpy(path + IIIF_ID_MAX, "/info.json");
    tsr_err err = {0};
    assert_int_equal(iiif_parse(path, &r, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "longer than"));
}

typedef struct bad_case {
    const char *path;
    const char *msg; /* a substring the message must contain */
} bad_case;

static void
parse_refused(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        /* structure */
        {"", "missing identifier"},
        {"/", "missing identifier"},
        {"full/max/0/default.jpg", "expected {identifier}"},
        {"abc/max/0/default.jpg", "expected {identifier}"},
        {"//info.json", "missing identifier"},
        {"a/b/", "expected {identifier}"},
        {"abc/full/max/0/default.jpg/", "expected {identifier}"},
        {"abc//max/0/default.jpg", "empty region"},
        {"abc/full//0/default.jpg", "empty size"},
        {"abc/full/max//default.jpg", "empty rotation"},
        {"abc/full/max/0/", "expected {identifier}"},
        {"abc/full/max/0/default.jpg?x=1", "query"},
        {"abc/full/max/0/default.jpg#f", "query"},
        {"%2/info.json", "percent-encoding"},
        {"%zz/info.json", "percent-encoding"},
        {"a%00b/info.json", "percent-encoding"},
        {"a%0Ab/info.json", "control character"},
        {"%/info.json", "percent-encoding"},
        {"%FF/info.json", "not UTF-8"},
        {"a%C3/info.json", "not UTF-8"},
        {"%C0%AF/info.json", "not UTF-8"},
        {"%ED%A0%80/info.json", "not UTF-8"},
        {"%F4%90%80%80/full/max/0/default.jpg", "not UTF-8"},
        {"abc/full/max/0/default.jp%g", "malformed percent-encoding"},
        /* region */
        {"abc/Full/max/0/default.jpg", "region 'Full'"},
        {"abc/1,2,3/max/0/default.jpg", "expected full, square"},
        {"abc/1,2,3,4,5/max/0/default.jpg", "expected full, square"},
        {"abc/1,2,3,0/max/0/default.jpg", "must be > 0"},
        {"abc/1,2,0,3/max/0/default.jpg", "must be > 0"},
        {"abc/-1,2,3,4/max/0/default.jpg", "non-negative integers"},
        {"abc/1,2,3,4x/max/0/default.jpg", "non-negative integers"},
        {"abc/1,2,3,+4/max/0/default.jpg", "non-negative integers"},
        {"abc/1,2, 3,4/max/0/default.jpg", "non-negative integers"},
        {"abc/1.5,2,3,4/max/0/default.jpg", "non-negative integers"},
        {"abc/1,2,4294967296,4/max/0/default.jpg", "non-negative integers"},
        {"abc/1,,3,4/max/0/default.jpg", "non-negative integers"},
        {"abc/pct:1,2,3/max/0/default.jpg", "expected full, square"},
        {"abc/pct:1,2,0,4/max/0/default.jpg", "must be > 0"},
        {"abc/pct:1,2,0.0,4/max/0/default.jpg", "must be > 0"},
        {"abc/pct:-1,2,3,4/max/0/default.jpg", "non-negative decimal"},
        {"abc/pct:1e1,2,3,4/max/0/default.jpg", "non-negative decimal"},
        {"abc/pct:.5,2,3,4/max/0/default.jpg", "non-negative decimal"},
        {"abc/pct:5.,2,3,4/max/0/default.jpg", "non-negative decimal"},
        {"abc/pct:1.2.3,2,3,4/max/0/default.jpg", "non-negative decimal"},
        {"abc/pct:nan,2,3,4/max/0/default.jpg", "non-negative decimal"},
        {"abc/pct:1234567890123,2,3,4/max/0/default.jpg", "non-negative decimal"},
        /* size */
        {"abc/full/full/0/default.jpg", "IIIF 2"},
        {"abc/full/Max/0/default.jpg", "expected max"},
        {"abc/full/,/0/default.jpg", "expected max"},
        {"abc/full/1,2,3/0/default.jpg", "expected max"},
        {"abc/full/0,/0/default.jpg", "must be > 0"},
        {"abc/full/,0/0/default.jpg", "must be > 0"},
        {"abc/full/10,0/0/default.jpg", "must be > 0"},
        {"abc/full/!10,/0/default.jpg", "needs both"},
        {"abc/full/!,10/0/default.jpg", "needs both"},
        {"abc/full/-10,/0/default.jpg", "positive integers"},
        {"abc/full/10.5,/0/default.jpg", "positive integers"},
        {"abc/full/99999999999,/0/default.jpg", "positive integers"},
        {"abc/full/^^max/0/default.jpg", "expected max"},
        {"abc/full/!^10,10/0/default.jpg", "positive integers"},
        {"abc/full/pct:0/0/default.jpg", "must be > 0"},
        {"abc/full/pct:/0/default.jpg", "decimal number"},
        {"abc/full/pct:101/0/default.jpg", "^pct:n"},
        {"abc/full/pct:100.5/0/default.jpg", "^pct:n"},
        {"abc/full/pct:-5/0/default.jpg", "decimal number"},
        /* rotation */
        {"abc/full/max/90/default.jpg", "rotation 90 not supported"},
        {"abc/full/max/!180/default.jpg", "rotation !180 not supported"},
        {"abc/full/max/0.5/default.jpg", "rotation 0.5 not supported"},
        {"abc/full/max/361/default.jpg", "within 0..360"},
        {"abc/full/max/-90/default.jpg", "expected a number"},
        {"abc/full/max/!/default.jpg", "expected a number"},
        {"abc/full/max/!!0/default.jpg", "expected a number"},
        {"abc/full/max/0x/default.jpg", "expected a number"},
        /* quality and format */
        {"abc/full/max/0/default", "{quality}.{format}"},
        {"abc/full/max/0/color.jpg", "quality 'color' not supported"},
        {"abc/full/max/0/bitonal.jpg", "quality 'bitonal' not supported"},
        {"abc/full/max/0/grey.jpg", "unknown quality 'grey'"},
        {"abc/full/max/0/native.jpg", "unknown quality"},
        {"abc/full/max/0/.jpg", "unknown quality"},
        {"abc/full/max/0/default.tif", "format 'tif' not supported (supported: jpg, png)"},
        {"abc/full/max/0/default.jpeg", "format 'jpeg' not supported"},
        {"abc/full/max/0/default.JPG", "format 'JPG' not supported"},
        {"abc/full/max/0/default.", "format '' not supported"},
        {"abc/full/max/0/default.jpg.png", "format 'jpg.png' not supported"},
        {"abc/full/max/0/default.webp", "supported: jpg, png"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        iiif_req r;
        memset(&r, 0xA5, sizeof r);
        tsr_err err = {0};
        int rc = iiif_parse(cases[i].path, &r, &err);
        if (rc != TSR_EINVAL) {
            fail_msg("'%s' gave %d, want TSR_EINVAL", cases[i].path, rc);
        }
        if (!strstr(err.msg, cases[i].msg)) {
            fail_msg("'%s': message '%s' lacks '%s'", cases[i].path, err.msg, cases[i].msg);
        }
        for (size_t b = 0; b < sizeof r; b++) { /* untouched on failure */
            assert_int_equal(((const uint8_t *)&r)[b], 0xA5);
        }
        assert_int_equal(iiif_parse(cases[i].path, &r, NULL), TSR_EINVAL); /* err may be NULL */
    }
    iiif_req r;
    assert_int_equal(iiif_parse(NULL, &r, NULL), TSR_EINVAL);

    /* Hostile bytes are not echoed into the message. */
    tsr_err err = {0};
    assert_int_equal(iiif_parse("abc/full/max/0/default.j\x01\x7fg", &r, &err), TSR_EINVAL);
    for (const char *c = err.msg; *c; c++) {
        assert_true((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
    }
}

/* ---------------------------------------------------------------- resolution */

static void
resolve_regions(void **state)
{
    (void)state;
    iiif_plan p = plan_of("i/full/max/0/default.jpg", 4664, 3064, NULL);
    assert_plan(&p, 0, 0, 4664, 3064, 4664, 3064, "full");
    p = plan_of("i/square/max/0/default.jpg", 4664, 3064, NULL);
    assert_plan(&p, 800, 0, 3064, 3064, 3064, 3064, "square wide");
    p = plan_of("i/square/max/0/default.jpg", 255, 258, NULL);
    assert_plan(&p, 0, 1, 255, 255, 255, 255, "square tall, odd difference");
    p = plan_of("i/square/max/0/default.jpg", 1, 1, NULL);
    assert_plan(&p, 0, 0, 1, 1, 1, 1, "square 1x1");

    /* Pixel regions are clipped to the image. */
    p = plan_of("i/4600,3000,1000,1000/max/0/default.jpg", 4664, 3064, NULL);
    assert_plan(&p, 4600, 3000, 64, 64, 64, 64, "clipped");
    p = plan_of("i/4663,3063,4294967295,4294967295/max/0/default.jpg", 4664, 3064, NULL);
    assert_plan(&p, 4663, 3063, 1, 1, 1, 1, "last pixel");

    /* Percentages: each edge rounds to the nearest pixel. */
    p = plan_of("i/pct:10,10,50,50/max/0/default.jpg", 4664, 3064, NULL);
    assert_plan(&p, 466, 306, 2332, 1532, 2332, 1532, "pct");
    p = plan_of("i/pct:0,0,50,50/max/0/default.jpg", 255, 257, NULL);
    assert_plan(&p, 0, 0, 128, 129, 128, 129, "pct of odd sizes");
    p = plan_of("i/pct:50,50,50,50/max/0/default.jpg", 255, 257, NULL);
    assert_plan(&p, 128, 129, 127, 128, 127, 128, "pct, the other half");
    p = plan_of("i/pct:90,0,50,200/max/0/default.jpg", 100, 10, NULL);
    assert_plan(&p, 90, 0, 10, 10, 10, 10, "pct clipped");

    static const bad_case bad[] = {
        {"i/4664,0,10,10/max/0/default.jpg", "outside the 4664x3064 image"},
        {"i/0,3064,10,10/max/0/default.jpg", "outside"},
        {"i/4608,3072,56,248/max/0/default.jpg", "outside"},
        {"i/pct:100,0,10,10/max/0/default.jpg", "covers no whole pixel"},
        {"i/pct:0,0,0.001,10/max/0/default.jpg", "covers no whole pixel"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        iiif_req r = parse_ok(bad[i].path);
        memset(&p, 0x5A, sizeof p);
        tsr_err err = {0};
        assert_int_equal(iiif_resolve(&r, 4664, 3064, NULL, &p, &err), TSR_EINVAL);
        if (!strstr(err.msg, bad[i].msg)) {
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].path, err.msg, bad[i].msg);
        }
        assert_int_equal(p.x, 0x5A5A5A5A);
    }
    iiif_req info = parse_ok("i/info.json");
    assert_int_equal(iiif_resolve(&info, 10, 10, NULL, &p, NULL), TSR_EINVAL);
    iiif_req img = parse_ok("i/full/max/0/default.jpg");
    assert_int_equal(iiif_resolve(&img, 0, 10, NULL, &p, NULL), TSR_EINVAL);
}

static void
resolve_sizes(void **state)
{
    (void)state;
    /* A 255 x 257 region (odd both ways). */
    static const struct {
        const char *size;
        uint32_t w, h;
    } good[] = {
        {"max", 255, 257},        {"128,", 128, 129},
        {",100", 99, 100},        {"pct:50", 128, 129},
        {"pct:100", 255, 257},    {"!100,100", 99, 100},
        {"!1000,1000", 255, 257}, {"^!1000,1000", 992, 1000},
        {"255,257", 255, 257},    {"10,200", 10, 200},
        {"^256,", 256, 258},      {"^,514", 510, 514},
        {"^pct:200", 510, 514},   {"^512,512", 512, 512},
        {"^max", 16256, 16384},   {"1,", 1, 2},
        {"!1,1", 1, 1},           {"255,", 255, 257},
        {"pct:0.1", 1, 1},        {"^pct:100.5", 256, 258},
        {"129,", 129, 130},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        char path[64];
        snprintf(path, sizeof path, "i/full/%s/0/default.jpg", good[i].size);
        iiif_plan p = plan_of(path, 255, 257, NULL);
        assert_plan(&p, 0, 0, 255, 257, good[i].w, good[i].h, good[i].size);
    }
    static const bad_case bad[] = {
        {"256,", "exceeds the region width 255 (the ^ form allows upscaling)"},
        {",258", "exceeds the region height 257"},
        {"256,257", "exceeds the 255x257 region"},
        {"255,258", "exceeds the 255x257 region"},
        {"^100000,", "exceeds the server's limit of 16384x16384"},
        {"^pct:7000", "exceeds the server's limit"},
        {"^16384,16384", "maxArea"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char path[64];
        snprintf(path, sizeof path, "i/full/%s/0/default.jpg", bad[i].path);
        iiif_req r = parse_ok(path);
        iiif_plan p;
        tsr_err err = {0};
        iiif_limits lim;
        iiif_limits_default(&lim);
        lim.max_area = (uint64_t)16384 * 16383; /* so that the area limit is reachable */
        assert_int_equal(iiif_resolve(&r, 255, 257, &lim, &p, &err), TSR_EINVAL);
        if (!strstr(err.msg, bad[i].msg)) {
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].path, err.msg, bad[i].msg);
        }
    }
}

static void
resolve_limits(void **state)
{
    (void)state;
    /* maxWidth alone: maxHeight is taken to be the same. */
    iiif_limits lim = {1000, 0, 0};
    iiif_plan p = plan_of("i/full/max/0/default.jpg", 4664, 3064, &lim);
    assert_plan(&p, 0, 0, 4664, 3064, 1000, 656, "max under maxWidth");
    p = plan_of("i/full/max/0/default.jpg", 3064, 4664, &lim);
    assert_plan(&p, 0, 0, 3064, 4664, 656, 1000, "max under implied maxHeight");
    p = plan_of("i/0,0,100,50/^max/0/default.jpg", 4664, 3064, &lim);
    assert_plan(&p, 0, 0, 100, 50, 1000, 500, "^max grows to the limit");
    p = plan_of("i/0,0,100,50/max/0/default.jpg", 4664, 3064, &lim);
    assert_plan(&p, 0, 0, 100, 50, 100, 50, "max never grows");

    /* maxArea. */
    iiif_limits area = {0, 0, 10000};
    p = plan_of("i/full/max/0/default.jpg", 255, 257, &area);
    assert_plan(&p, 0, 0, 255, 257, 99, 100, "max under maxArea");
    assert_true((uint64_t)p.out_w * p.out_h <= 10000);

    /* No limits at all: ^max is the region itself; the hard cap still holds. */
    iiif_limits none = {0, 0, 0};
    p = plan_of("i/0,0,100,50/^max/0/default.jpg", 4664, 3064, &none);
    assert_plan(&p, 0, 0, 100, 50, 100, 50, "^max without limits");
    p = plan_of("i/full/^20000,/0/default.jpg", 4664, 3064, &none);
    assert_int_equal(p.out_w, 20000);
    p = plan_of("i/full/max/0/default.jpg", 100000, 10, &none);
    assert_int_equal(p.out_w, RND_RESAMPLE_MAX_SIDE);
    iiif_req r = parse_ok("i/full/^70000,/0/default.jpg");
    tsr_err err = {0};
    assert_int_equal(iiif_resolve(&r, 4664, 3064, &none, &p, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "limit"));

    static const char *const over[] = {"i/full/1001,/0/default.jpg", "i/full/,1001/0/default.jpg",
                                       "i/full/pct:50/0/default.jpg",
                                       "i/full/!2000,2000/0/default.jpg"};
    for (size_t i = 0; i < sizeof over / sizeof *over; i++) {
        r = parse_ok(over[i]);
        memset(&err, 0, sizeof err);
        assert_int_equal(iiif_resolve(&r, 4664, 3064, &lim, &p, &err), TSR_EINVAL);
        if (!strstr(err.msg, "exceeds the server's limit of 1000x1000")) {
            fail_msg("%s: %s", over[i], err.msg);
        }
    }
    /* Mirroring, quality and format pass through. */
    p = plan_of("i/full/max/!0/gray.png", 10, 10, NULL);
    assert_int_equal(p.mirror, 1);
    assert_int_equal(p.quality, IIIF_QUALITY_GRAY);
    assert_int_equal(p.format, RND_FMT_PNG);
}

/* ---------------------------------------------------------------- tiles */

/* The tile URL OpenSeadragon's IIIFTileSource.getTileUrl builds for tile (x, y) of its level
 * `osd_level` (0 = smallest) from an info.json with `levels` scale factors; v3 sends "w,h", the
 * older IIIF 2 path "w,". */
static void
osd_url(char *buf, size_t n, uint32_t W, uint32_t H, uint32_t T, int levels, int osd_level,
        uint32_t x, uint32_t y, int v3)
{
    int max_level = levels - 1;
    double scale = pow(0.5, max_level - osd_level);
    uint32_t lw = (uint32_t)ceil(W * scale), lh = (uint32_t)ceil(H * scale);
    uint32_t ts = (uint32_t)round(T / scale);
    char region[64], size[64];
    if (lw < T && lh < T) {
        snprintf(region, sizeof region, "full");
        if (lw == W && lh == H) {
            snprintf(size, sizeof size, "max");
        } else if (v3) {
            snprintf(size, sizeof size, "%u,%u", lw, lh);
        } else {
            snprintf(size, sizeof size, "%u,", lw);
        }
    } else {
        uint32_t tx = x * ts, ty = y * ts;
        uint32_t tw = ts < W - tx ? ts : W - tx, th = ts < H - ty ? ts : H - ty;
        if (x == 0 && y == 0 && tw == W && th == H) {
            snprintf(region, sizeof region, "full");
        } else {
            snprintf(region, sizeof region, "%u,%u,%u,%u", tx, ty, tw, th);
        }
        if (v3) {
            uint32_t sw = T < lw - x * T ? T : lw - x * T, sh = T < lh - y * T ? T : lh - y * T;
            if (sw == W && sh == H) {
                snprintf(size, sizeof size, "max");
            } else {
                snprintf(size, sizeof size, "%u,%u", sw, sh);
            }
        } else {
            snprintf(size, sizeof size, "%u,", (uint32_t)ceil(tw * scale));
        }
    }
    snprintf(buf, n, "id/%s/%s/0/default.jpg", region, size);
}

/* Every tile OpenSeadragon asks for (IIIF 3 form) resolves to exactly the tile rnd_tile_rect
 * describes; in the IIIF 2 form ("w,") every tile whose height the rounding keeps is found too,
 * and none is ever mistaken for another. */
static void
check_osd(uint32_t W, uint32_t H, uint32_t T)
{
    int levels = rnd_level_count(W, H, T);
    assert_true(levels >= 1);
    for (int v3 = 0; v3 <= 1; v3++) {
        int found = 0, total = 0;
        for (int L = 0; L < levels; L++) {
            int k = levels - 1 - L;
            uint32_t cols, rows;
            assert_int_equal(rnd_tile_grid(W, H, T, k, &cols, &rows), TSR_OK);
            for (uint32_t y = 0; y < rows; y++) {
                for (uint32_t x = 0; x < cols; x++) {
                    char url[160];
                    osd_url(url, sizeof url, W, H, T, levels, L, x, y, v3);
                    iiif_plan p = plan_of(url, W, H, NULL);
                    uint32_t rx, ry, rw, rh;
                    assert_int_equal(rnd_tile_rect(W, H, T, k, x, y, &rx, &ry, &rw, &rh), TSR_OK);
                    int level;
                    uint32_t col, row;
                    int hit = iiif_plan_tile(&p, W, H, T, &level, &col, &row);
                    total++;
                    if (hit) {
                        found++;
                        if (level != k || col != x || row != y) {
                            fail_msg("%ux%u %s: tile %d/%u/%u, want %d/%u/%u", W, H, url, level,
                                     col, row, k, x, y);
                        }
                    } else if (v3) {
                        fail_msg("%ux%u %s: not recognised as tile %d/%u/%u", W, H, url, k, x, y);
                    } else {
                        /* "w," may lose a tile only where the tile's height is a pixel or more
                         * off the region's aspect ratio (a column 1 pixel wide, say). */
                        double exact = (double)p.h * p.out_w / p.w;
                        if (fabs((double)rh - exact) < 1.0) {
                            fail_msg("%ux%u %s: not recognised as tile %d/%u/%u", W, H, url, k, x,
                                     y);
                        }
                    }
                    if (hit || v3) { /* the plan is the tile, in level-0 pixels */
                        assert_int_equal(p.x, (uint64_t)rx << k);
                        assert_int_equal(p.y, (uint64_t)ry << k);
                        assert_int_equal(p.out_w, rw);
                        assert_int_equal(p.out_h, rh);
                        uint64_t span_w = (uint64_t)rw << k, span_h = (uint64_t)rh << k;
                        assert_int_equal(p.w, span_w < W - p.x ? span_w : W - p.x);
                        assert_int_equal(p.h, span_h < H - p.y ? span_h : H - p.y);
                    }
                }
            }
        }
        if (!v3) {
            assert_true(found * 2 > total); /* sanity: the check above ran on real tiles */
        }
    }
}

static void
tiles_openseadragon(void **state)
{
    (void)state;
    static const uint32_t sizes[][3] = {
        {4664, 3064, 256}, {3064, 4664, 256}, {513, 511, 256}, {255, 257, 256},   {1, 1, 256},
        {512, 512, 256},   {4663, 3065, 256}, {1000, 17, 16},  {2048, 1536, 512}, {777, 999, 100}};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        check_osd(sizes[i][0], sizes[i][1], sizes[i][2]);
    }
}

static void
tiles_examples(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        int level;
        uint32_t col, row;
    } cases[] = {
        /* 4664 x 3064 in 256 tiles: 6 levels, scale factors 1..32. */
        {"i/0,0,1024,1024/256,/0/default.jpg", 2, 0, 0},
        {"i/0,0,1024,1024/256,256/0/default.jpg", 2, 0, 0},
        {"i/1024,0,1024,1024/256,256/!0/gray.png", 2, 1, 0},
        {"i/4096,2048,568,1016/142,254/0/default.jpg", 2, 4, 2},
        {"i/4096,2048,568,1016/142,/0/default.jpg", 2, 4, 2},
        {"i/4608,2816,56,248/56,248/0/default.jpg", 0, 18, 11},
        {"i/4608,2816,56,248/max/0/default.jpg", 0, 18, 11},
        {"i/4608,0,56,256/56,/0/default.jpg", 0, 18, 0},
        {"i/0,0,4096,3064/256,192/0/default.jpg", 4, 0, 0},
        {"i/4096,0,568,3064/36,192/0/default.jpg", 4, 1, 0},
        {"i/full/146,96/0/default.jpg", 5, 0, 0},
        {"i/full/146,/0/default.jpg", 5, 0, 0},
        {"i/0,0,8192,8192/146,96/0/default.jpg", 5, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        iiif_plan p = plan_of(cases[i].path, 4664, 3064, NULL);
        int level = -1;
        uint32_t col = 99, row = 99;
        if (!iiif_plan_tile(&p, 4664, 3064, 256, &level, &col, &row)) {
            fail_msg("%s: not a tile", cases[i].path);
        }
        if (level != cases[i].level || col != cases[i].col || row != cases[i].row) {
            fail_msg("%s: tile %d/%u/%u, want %d/%u/%u", cases[i].path, level, col, row,
                     cases[i].level, cases[i].col, cases[i].row);
        }
    }
    static const char *const not_tiles[] = {
        "i/0,0,1024,1024/128,/0/default.jpg",   /* scale 8 on a 1024 region: no level */
        "i/1,0,1024,1024/256,/0/default.jpg",   /* not aligned */
        "i/512,0,1024,1024/256,/0/default.jpg", /* aligned to level 1, not to level 2 */
        "i/0,0,1000,1024/250,256/0/default.jpg",
        "i/0,0,1024,1024/^512,512/0/default.jpg",
        "i/full/max/0/default.jpg",
        "i/full/147,96/0/default.jpg",
        "i/pct:0,0,50,50/max/0/default.jpg",
    };
    int level;
    uint32_t col, row;
    for (size_t i = 0; i < sizeof not_tiles / sizeof *not_tiles; i++) {
        iiif_plan p = plan_of(not_tiles[i], 4664, 3064, NULL);
        if (iiif_plan_tile(&p, 4664, 3064, 256, &level, &col, &row)) {
            fail_msg("%s: taken for tile %d/%u/%u", not_tiles[i], level, col, row);
        }
    }
    /* Level 1 tiles are 512 wide in level-0 pixels. */
    iiif_plan p = plan_of("i/0,0,512,512/256,/0/default.jpg", 4664, 3064, NULL);
    assert_int_equal(iiif_plan_tile(&p, 4664, 3064, 256, &level, &col, &row), 1);
    assert_int_equal(level, 1);
    assert_int_equal(col, 0);
    assert_int_equal(row, 0);
    /* Invalid pyramids never match. */
    p = plan_of("i/full/max/0/default.jpg", 100, 100, NULL);
    assert_int_equal(iiif_plan_tile(&p, 100, 100, 256, &level, &col, &row), 1);
    assert_int_equal(iiif_plan_tile(&p, 100, 100, 8, &level, &col, &row), 0);
    assert_int_equal(iiif_plan_tile(&p, 0, 100, 256, &level, &col, &row), 0);
    assert_int_equal(iiif_plan_tile(NULL, 100, 100, 256, &level, &col, &row), 0);
}

/* ---------------------------------------------------------------- canonical, info.json */

static void
canonical_form(void **state)
{
    (void)state;
    char buf[128];
    iiif_plan p = plan_of("i/full/max/0/default.jpg", 4664, 3064, NULL);
    assert_int_equal(iiif_canonical(&p, 4664, 3064, buf, sizeof buf), TSR_OK);
    assert_string_equal(buf, "full/max/0/default.jpg");
    p = plan_of("i/pct:0,0,100,100/pct:50/!0/gray.png", 4664, 3064, NULL);
    assert_int_equal(iiif_canonical(&p, 4664, 3064, buf, sizeof buf), TSR_OK);
    assert_string_equal(buf, "full/2332,1532/!0/gray.png");
    p = plan_of("i/4096,2048,1000,1000/142,/0/default.jpg", 4664, 3064, NULL);
    assert_int_equal(iiif_canonical(&p, 4664, 3064, buf, sizeof buf), TSR_OK);
    assert_string_equal(buf, "4096,2048,568,1000/142,250/0/default.jpg");
    assert_int_equal(iiif_canonical(&p, 4664, 3064, buf, 10), TSR_ELIMIT);
    assert_string_equal(buf, "");
    /* The canonical form parses back to the same plan. */
    char path[160];
    snprintf(path, sizeof path, "i/%s", "4096,2048,568,1000/142,250/0/default.jpg");
    iiif_plan q = plan_of(path, 4664, 3064, NULL);
    assert_memory_equal(&p, &q, sizeof p);
    assert_string_equal(iiif_format_mime(RND_FMT_JPEG), "image/jpeg");
    assert_string_equal(iiif_format_mime(RND_FMT_PNG), "image/png");
}

static json_int_t
int_field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) {
        fail_msg("info.json: %s is not an integer", key);
    }
    return json_integer_value(v);
}

static void
info_json(void **state)
{
    (void)state;
    char *text = NULL;
    int levels = rnd_level_count(4664, 3064, 256);
    assert_int_equal(levels, 6);
    assert_int_equal(
        iiif_info_json("https://h.example/iiif/1.2.3%2F4", 4664, 3064, 256, levels, &text), TSR_OK);
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j) {
        fail_msg("info.json does not parse: %s\n%s", jerr.text, text);
    }
    assert_string_equal(json_string_value(json_object_get(j, "@context")),
                        "http://iiif.io/api/image/3/context.json");
    assert_string_equal(json_string_value(json_object_get(j, "id")),
                        "https://h.example/iiif/1.2.3%2F4");
    assert_string_equal(json_string_value(json_object_get(j, "type")), "ImageService3");
    assert_string_equal(json_string_value(json_object_get(j, "protocol")),
                        "http://iiif.io/api/image");
    assert_string_equal(json_string_value(json_object_get(j, "profile")), "level1");
    assert_int_equal(int_field(j, "width"), 4664);
    assert_int_equal(int_field(j, "height"), 3064);
    assert_null(json_object_get(j, "maxWidth"));

    json_t *tiles = json_object_get(j, "tiles");
    assert_true(json_is_array(tiles));
    assert_int_equal(json_array_size(tiles), 1);
    json_t *t = json_array_get(tiles, 0);
    assert_int_equal(int_field(t, "width"), 256);
    assert_int_equal(int_field(t, "height"), 256);
    json_t *sf = json_object_get(t, "scaleFactors");
    assert_int_equal(json_array_size(sf), 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(json_integer_value(json_array_get(sf, i)), 1 << i);
    }
    /* sizes: every level, smallest first, each ceil(W / factor) (OpenSeadragon checks this). */
    json_t *sizes = json_object_get(j, "sizes");
    assert_int_equal(json_array_size(sizes), 6);
    for (size_t i = 0; i < 6; i++) {
        uint32_t w, h;
        rnd_level_size(4664, 3064, 5 - (int)i, &w, &h);
        json_t *s = json_array_get(sizes, i);
        assert_int_equal(int_field(s, "width"), w);
        assert_int_equal(int_field(s, "height"), h);
    }
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "extraFormats"), 0)),
                        "png");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "extraQualities"), 0)),
                        "gray");
    json_t *feats = json_object_get(j, "extraFeatures");
    assert_true(json_is_array(feats));
    int mirroring = 0;
    for (size_t i = 0; i < json_array_size(feats); i++) {
        mirroring |= strcmp(json_string_value(json_array_get(feats, i)), "mirroring") == 0;
    }
    assert_true(mirroring);
    json_decref(j);
    iiif_free(text);

    /* With limits: advertised, and sizes beyond them left out. */
    iiif_limits lim = {2000, 0, 0};
    text = NULL;
    assert_int_equal(iiif_info_json_limits("http://x/i", 4664, 3064, 256, 6, &lim, &text), TSR_OK);
    j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    assert_int_equal(int_field(j, "maxWidth"), 2000);
    assert_null(json_object_get(j, "maxHeight"));
    assert_null(json_object_get(j, "maxArea"));
    assert_int_equal(json_array_size(json_object_get(j, "sizes")), 4); /* 2332 and 4664 out */
    json_decref(j);
    iiif_free(text);

    /* A single-tile image: one scale factor. */
    text = NULL;
    assert_int_equal(iiif_info_json("http://x/i", 1, 1, 256, rnd_level_count(1, 1, 256), &text),
                     TSR_OK);
    j = json_loads(text, 0, &jerr);
    assert_non_null(j);
    sf = json_object_get(json_array_get(json_object_get(j, "tiles"), 0), "scaleFactors");
    assert_int_equal(json_array_size(sf), 1);
    json_decref(j);
    iiif_free(text);

    /* Refused arguments leave *out alone. */
    char *keep = (char *)"untouched";
    text = keep;
    assert_int_equal(iiif_info_json("http://x/i", 10, 10, 8, 1, &text), TSR_EINVAL);
    assert_int_equal(iiif_info_json("http://x/i", 10, 10, 256, 0, &text), TSR_EINVAL);
    assert_int_equal(iiif_info_json("http://x/i", 10, 10, 256, 33, &text), TSR_EINVAL);
    assert_int_equal(iiif_info_json("http://x/i", 0, 10, 256, 1, &text), TSR_EINVAL);
    assert_int_equal(iiif_info_json("", 10, 10, 256, 1, &text), TSR_EINVAL);
    assert_int_equal(iiif_info_json(NULL, 10, 10, 256, 1, &text), TSR_EINVAL);
    assert_int_equal(iiif_info_json("http://x/\xff", 10, 10, 256, 1, &text), TSR_EINVAL);
    assert_ptr_equal(text, keep);
    iiif_free(NULL);
}

TSR_TEST_MAIN(cmocka_unit_test(parse_image_forms), cmocka_unit_test(parse_identifiers),
              cmocka_unit_test(parse_refused), cmocka_unit_test(resolve_regions),
              cmocka_unit_test(resolve_sizes), cmocka_unit_test(resolve_limits),
              cmocka_unit_test(tiles_openseadragon), cmocka_unit_test(tiles_examples),
              cmocka_unit_test(canonical_form), cmocka_unit_test(info_json))
