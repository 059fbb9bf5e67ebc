/* SPDX-License-Identifier: MIT */
/* test_annotate.c: burned-in annotations: the font, where text lands, the outline, scaling,
 * truncation and clipping. */
#include "tsr_test.h"

#include "rnd.h"

#define BG 128 /* background grey: neither text (255) nor outline (0) */

/* A w x h image filled with BG, with `pad` bytes of 0xEE after each row, allocated to its exact
 * size so that AddressSanitizer catches any write past the end. */
static rnd_image
canvas(uint32_t w, uint32_t h, uint8_t ch, size_t pad)
{
    rnd_image img = {0};
    img.width = w;
    img.height = h;
    img.channels = ch;
    img.stride = (size_t)w * ch + pad;
    img.data = malloc(img.stride * h);
    assert_non_null(img.data);
    memset(img.data, 0xEE, img.stride * h);
    for (uint32_t y = 0; y < h; y++) {
        memset(img.data + y * img.stride, BG, (size_t)w * ch);
    }
    return img;
}

static void
canvas_free(rnd_image *img)
{
    free(img->data);
    memset(img, 0, sizeof *img);
}

static uint8_t
px(const rnd_image *img, uint32_t x, uint32_t y)
{
    return img->data[y * img->stride + (size_t)x * img->channels];
}

/* Bounding box of pixels that are not BG; returns the number of such pixels. */
typedef struct box {
    long x0, y0, x1, y1; /* inclusive */
    long n_white, n_black;
} box;

static box
changed(const rnd_image *img)
{
    box b = {(long)img->width, (long)img->height, -1, -1, 0, 0};
    for (uint32_t y = 0; y < img->height; y++) {
        for (uint32_t x = 0; x < img->width; x++) {
            uint8_t v = px(img, x, y);
            for (uint8_t c = 1; c < img->channels; c++) {
                assert_int_equal(img->data[y * img->stride + (size_t)x * img->channels + c], v);
            }
            if (v == BG) {
                continue;
            }
            if (v != 0 && v != 255) {
                fail_msg("pixel (%u,%u) is %d: only 0 and 255 are drawn", x, y, v);
            }
            b.n_white += v == 255;
            b.n_black += v == 0;
            b.x0 = (long)x < b.x0 ? (long)x : b.x0;
            b.y0 = (long)y < b.y0 ? (long)y : b.y0;
            b.x1 = (long)x > b.x1 ? (long)x : b.x1;
            b.y1 = (long)y > b.y1 ? (long)y : b.y1;
        }
    }
    return b;
}

/* Bounding box of the white (text) pixels only. */
static box
white_box(const rnd_image *img)
{
    box b = {(long)img->width, (long)img->height, -1, -1, 0, 0};
    for (uint32_t y = 0; y < img->height; y++) {
        for (uint32_t x = 0; x < img->width; x++) {
            if (px(img, x, y) == 255) {
                b.n_white++;
                b.x0 = (long)x < b.x0 ? (long)x : b.x0;
                b.y0 = (long)y < b.y0 ? (long)y : b.y0;
                b.x1 = (long)x > b.x1 ? (long)x : b.x1;
                b.y1 = (long)y > b.y1 ? (long)y : b.y1;
            }
        }
    }
    return b;
}

static void
assert_padding_intact(const rnd_image *img)
{
    size_t row = (size_t)img->width * img->channels;
    for (uint32_t y = 0; y < img->height; y++) {
        for (size_t i = row; i < img->stride; i++) {
            if (img->data[y * img->stride + i] != 0xEE) {
                fail_msg("stride padding of row %u written", y);
            }
        }
    }
}

static rnd_annotation
one_line(rnd_corner k, const char *text)
{
    rnd_annotation a;
    memset(&a, 0, sizeof a);
    a.lines[k][0] = text;
    a.n[k] = 1;
    return a;
}

static int
images_equal(const rnd_image *a, const rnd_image *b)
{
    for (uint32_t y = 0; y < a->height; y++) {
        if (memcmp(a->data + y * a->stride, b->data + y * b->stride,
                   (size_t)a->width * a->channels) != 0) {
            return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- the font */

static void
glyphs_distinct_and_inside_the_cell(void **state)
{
    (void)state;
    uint8_t g[95][RND_FONT_H];
    for (uint32_t c = 0x20; c <= 0x7e; c++) {
        uint8_t *r = g[c - 0x20];
        assert_int_equal(rnd_font_glyph(c, r), 1);
        int lit = 0;
        for (int y = 0; y < RND_FONT_H; y++) {
            lit += r[y] != 0;
            /* The spacing column (bit 0) and row (9) are never drawn. */
            if ((r[y] & 1) || r[y] >= 1 << RND_FONT_W) {
                fail_msg("'%c' row %d = 0x%02x leaves its 5 columns", (int)c, y, r[y]);
            }
        }
        assert_int_equal(g[c - 0x20][RND_FONT_H - 1], 0);
        if (c == ' ') {
            assert_int_equal(lit, 0);
        } else if (lit == 0) {
            fail_msg("'%c' has an empty glyph", (int)c);
        }
    }
    for (int i = 0; i < 95; i++) {
        for (int j = i + 1; j < 95; j++) {
            if (memcmp(g[i], g[j], RND_FONT_H) == 0) {
                fail_msg("'%c' and '%c' have the same glyph", i + 0x20, j + 0x20);
            }
        }
    }
    /* Capitals and digits stand on the baseline (row 6); descenders go below it. */
    assert_int_equal(g['H' - 0x20][6], 0x22);
    assert_int_equal(g['H' - 0x20][7], 0);
    assert_true(g['g' - 0x20][8] != 0);
    assert_true(g['y' - 0x20][8] != 0);
    assert_int_equal(g['x' - 0x20][1], 0); /* x-height below row 2 */
}

static void
glyph_substitution(void **state)
{
    (void)state;
    uint8_t q[RND_FONT_H], r[RND_FONT_H];
    rnd_font_glyph('?', q);
    static const uint32_t others[] = {0x00, 0x09, 0x1f, 0x7f, 0x80, 0xe9, 0x4e2d, 0x1f600};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        memset(r, 0xAA, sizeof r);
        assert_int_equal(rnd_font_glyph(others[i], r), 0);
        assert_memory_equal(r, q, RND_FONT_H);
    }
}

/* Non-ASCII UTF-8 is drawn as one '?' per code point; a broken byte as one '?' too. */
static void
utf8_drawn_as_question_marks(void **state)
{
    (void)state;
    static const struct {
        const char *text, *same_as;
    } cases[] = {
        {"Jos\xc3\xa9", "Jos?"},            /* e-acute, 2 bytes */
        {"\xe4\xb8\xad\xe6\x96\x87", "??"}, /* two CJK characters, 3 bytes each */
        {"a\xf0\x9f\x98\x80z", "a?z"},      /* an emoji, 4 bytes */
        {"a\xffz", "a?z"},                  /* an invalid byte */
        {"a\xc3z", "a?z"},                  /* a truncated sequence */
        {"tab\there", "tab?here"},          /* control characters */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rnd_image a = canvas(256, 256, 1, 0), b = canvas(256, 256, 1, 0);
        rnd_annotation x = one_line(RND_CORNER_TOP_LEFT, cases[i].text);
        rnd_annotation y = one_line(RND_CORNER_TOP_LEFT, cases[i].same_as);
        assert_int_equal(rnd_annotate(&a, &x, NULL), TSR_OK);
        assert_int_equal(rnd_annotate(&b, &y, NULL), TSR_OK);
        if (!images_equal(&a, &b)) {
            fail_msg("case %zu is not drawn as '%s'", i, cases[i].same_as);
        }
        canvas_free(&a);
        canvas_free(&b);
    }
}

/* ---------------------------------------------------------------- placement */

/* At scale 1 'H' is drawn exactly from its glyph, one cell in from the margin. */
static void
exact_glyph_pixels(void **state)
{
    (void)state;
    rnd_image img = canvas(256, 256, 1, 3);
    rnd_annotation a = one_line(RND_CORNER_TOP_LEFT, "H");
    assert_int_equal(rnd_annotate(&img, &a, NULL), TSR_OK);
    uint8_t g[RND_FONT_H];
    rnd_font_glyph('H', g);
    box w = white_box(&img);
    const long m = w.x0; /* the margin */
    assert_true(m >= 2 && m <= 8);
    assert_int_equal(w.y0, m);
    for (int y = 0; y < RND_FONT_H; y++) {
        for (int x = 0; x < RND_FONT_W; x++) {
            int want = (g[y] >> (RND_FONT_W - 1 - x)) & 1;
            int got = px(&img, (uint32_t)(m + x), (uint32_t)(m + y)) == 255;
            if (want != got) {
                fail_msg("'H' pixel (%d,%d): got %d, want %d", x, y, got, want);
            }
        }
    }
    assert_padding_intact(&img);
    canvas_free(&img);
}

/* Text changes pixels in its own corner only, and each corner is anchored to its edges. */
static void
each_corner_stays_in_its_corner(void **state)
{
    (void)state;
    const uint32_t w = 300, h = 200;
    for (int k = 0; k < RND_CORNER_COUNT; k++) {
        rnd_image img = canvas(w, h, 1, 0);
        rnd_annotation a;
        memset(&a, 0, sizeof a);
        a.lines[k][0] = "HIJ";
        a.lines[k][1] = "W 400 L 40";
        a.n[k] = 2;
        assert_int_equal(rnd_annotate(&img, &a, NULL), TSR_OK);
        box b = changed(&img);
        assert_true(b.n_white > 0);
        int right = k == RND_CORNER_TOP_RIGHT || k == RND_CORNER_BOTTOM_RIGHT;
        int bottom = k == RND_CORNER_BOTTOM_LEFT || k == RND_CORNER_BOTTOM_RIGHT;
        if (right ? b.x0 < (long)w / 2 : b.x1 >= (long)w / 2) {
            fail_msg("corner %d: columns %ld..%ld cross the middle", k, b.x0, b.x1);
        }
        if (bottom ? b.y0 < (long)h / 2 : b.y1 >= (long)h / 2) {
            fail_msg("corner %d: rows %ld..%ld cross the middle", k, b.y0, b.y1);
        }
        /* Anchored: within a few pixels of the corner's two edges. */
        box t = white_box(&img);
        long dx = right ? (long)w - 1 - t.x1 : t.x0;
        long dy = bottom ? (long)h - 1 - t.y1 : t.y0;
        assert_true(dx >= 2 && dx <= 8);
        assert_true(dy >= 2 && dy <= 20); /* bottom: the last line has no descender here */
        canvas_free(&img);
    }
}

/* Right corners right-align every line; bottom corners put the last line at the bottom. */
static void
alignment(void **state)
{
    (void)state;
    rnd_image a = canvas(256, 256, 1, 0), b = canvas(256, 256, 1, 0);
    rnd_annotation one = one_line(RND_CORNER_TOP_RIGHT, "HH");
    rnd_annotation two;
    memset(&two, 0, sizeof two);
    two.lines[RND_CORNER_TOP_RIGHT][0] = "HHHHHHHH";
    two.lines[RND_CORNER_TOP_RIGHT][1] = "HH";
    two.n[RND_CORNER_TOP_RIGHT] = 2;
    assert_int_equal(rnd_annotate(&a, &one, NULL), TSR_OK);
    assert_int_equal(rnd_annotate(&b, &two, NULL), TSR_OK);
    box wa = white_box(&a), wb = white_box(&b);
    assert_int_equal(wa.x1, wb.x1);                          /* same right edge */
    assert_int_equal(wb.x1 - wb.x0 + 1, 8 * RND_FONT_W - 1); /* 8 glyphs wide */
    assert_int_equal(wa.x1 - wa.x0 + 1, 2 * RND_FONT_W - 1);
    canvas_free(&a);
    canvas_free(&b);

    /* Bottom-left: with two lines, the second sits where a single line would. */
    a = canvas(256, 256, 1, 0);
    b = canvas(256, 256, 1, 0);
    one = one_line(RND_CORNER_BOTTOM_LEFT, "Frame 3/30");
    memset(&two, 0, sizeof two);
    two.lines[RND_CORNER_BOTTOM_LEFT][0] = "W 400 L 40";
    two.lines[RND_CORNER_BOTTOM_LEFT][1] = "Frame 3/30";
    two.n[RND_CORNER_BOTTOM_LEFT] = 2;
    assert_int_equal(rnd_annotate(&a, &one, NULL), TSR_OK);
    assert_int_equal(rnd_annotate(&b, &two, NULL), TSR_OK);
    for (uint32_t y = 256 - RND_FONT_H - 3; y < 256; y++) { /* line 1 and its outline */
        assert_memory_equal(a.data + y * a.stride, b.data + y * b.stride, 256);
    }
    assert_true(white_box(&b).y0 < white_box(&a).y0 - RND_FONT_H + 2);
    canvas_free(&a);
    canvas_free(&b);

    /* A NULL line keeps its slot: the text of line 1 lands one line down. */
    a = canvas(256, 256, 1, 0);
    b = canvas(256, 256, 1, 0);
    rnd_annotation gap;
    memset(&gap, 0, sizeof gap);
    gap.lines[RND_CORNER_TOP_LEFT][1] = "X";
    gap.n[RND_CORNER_TOP_LEFT] = 2;
    one = one_line(RND_CORNER_TOP_LEFT, "X");
    assert_int_equal(rnd_annotate(&a, &gap, NULL), TSR_OK);
    assert_int_equal(rnd_annotate(&b, &one, NULL), TSR_OK);
    assert_int_equal(white_box(&a).y0, white_box(&b).y0 + RND_FONT_H);
    canvas_free(&a);
    canvas_free(&b);
}

/* ---------------------------------------------------------------- outline */

static void
outline_surrounds_text(void **state)
{
    (void)state;
    for (uint8_t ch = 1; ch <= 3; ch += 2) {
        rnd_image img = canvas(320, 240, ch, 5);
        rnd_annotation a;
        memset(&a, 0, sizeof a);
        a.lines[RND_CORNER_TOP_LEFT][0] = "DOE^JOHN";
        a.lines[RND_CORNER_TOP_RIGHT][0] = "CT HEAD 2024-01-02";
        a.lines[RND_CORNER_BOTTOM_LEFT][0] = "W 400 L 40";
        a.lines[RND_CORNER_BOTTOM_RIGHT][0] = "@#%&*~{}|";
        for (int k = 0; k < RND_CORNER_COUNT; k++) {
            a.n[k] = 1;
        }
        assert_int_equal(rnd_annotate(&img, &a, NULL), TSR_OK);
        box b = changed(&img); /* also checks: only 0/255, channels equal (RGB: white/black) */
        assert_true(b.n_white > 100);
        assert_true(b.n_black > b.n_white); /* a ring is longer than what it encloses */
        for (uint32_t y = 0; y < img.height; y++) {
            for (uint32_t x = 0; x < img.width; x++) {
                uint8_t v = px(&img, x, y);
                int white_near = 0, bg_near = 0;
                for (int dy = -1; dy <= 1; dy++) {
                    for (int dx = -1; dx <= 1; dx++) {
                        long nx = (long)x + dx, ny = (long)y + dy;
                        if ((dx || dy) && nx >= 0 && ny >= 0 && nx < (long)img.width &&
                            ny < (long)img.height) {
                            uint8_t n = px(&img, (uint32_t)nx, (uint32_t)ny);
                            white_near |= n == 255;
                            bg_near |= n == BG;
                        }
                    }
                }
                /* Text never touches the background: the ring is closed. */
                if (v == 255 && bg_near) {
                    fail_msg("%u channel(s): text pixel (%u,%u) touches the background", ch, x, y);
                }
                /* The ring is one pixel: every black pixel touches text. */
                if (v == 0 && !white_near) {
                    fail_msg("%u channel(s): outline pixel (%u,%u) is not next to text", ch, x, y);
                }
            }
        }
        assert_padding_intact(&img);
        canvas_free(&img);
    }
}

/* ---------------------------------------------------------------- scale */

static void
scale_from_image_size(void **state)
{
    (void)state;
    assert_int_equal(rnd_annotate_scale(0, 0), 1);
    assert_int_equal(rnd_annotate_scale(1, 1), 1);
    assert_int_equal(rnd_annotate_scale(256, 256), 1);
    assert_int_equal(rnd_annotate_scale(1023, 4000), 1);
    assert_int_equal(rnd_annotate_scale(1024, 1024), 2);
    assert_int_equal(rnd_annotate_scale(2048, 1536), 3);
    assert_int_equal(rnd_annotate_scale(2048, 2048), 4);
    assert_int_equal(rnd_annotate_scale(100, 5000), 1);

    /* The same text is 4 times taller and wider at 2048 than at 256. */
    rnd_image small = canvas(256, 256, 1, 0), big = canvas(2048, 2048, 1, 0);
    rnd_annotation a = one_line(RND_CORNER_TOP_LEFT, "HH");
    assert_int_equal(rnd_annotate(&small, &a, NULL), TSR_OK);
    assert_int_equal(rnd_annotate(&big, &a, NULL), TSR_OK);
    box s = white_box(&small), b = white_box(&big);
    assert_int_equal(s.y1 - s.y0 + 1, 7);
    assert_int_equal(b.y1 - b.y0 + 1, 4 * 7);
    assert_int_equal(s.x1 - s.x0 + 1, 11);
    assert_int_equal(b.x1 - b.x0 + 1, 4 * 11);
    assert_int_equal(b.n_white, 16 * s.n_white);
    /* The outline stays one pixel wide at scale 4: pixel just left of the text is black, the
     * one before it background. */
    uint32_t y = (uint32_t)b.y0 + 4;
    assert_int_equal(px(&big, (uint32_t)b.x0 - 1, y), 0);
    assert_int_equal(px(&big, (uint32_t)b.x0 - 2, y), BG);
    canvas_free(&small);
    canvas_free(&big);
}

/* ---------------------------------------------------------------- truncation, clipping */

static void
long_lines_are_truncated_not_wrapped(void **state)
{
    (void)state;
    char longline[1001];
    memset(longline, 'A', 1000);
    longline[1000] = '\0';
    for (int k = 0; k < RND_CORNER_COUNT; k++) {
        rnd_image img = canvas(256, 100, 1, 4);
        rnd_annotation a = one_line((rnd_corner)k, longline);
        assert_int_equal(rnd_annotate(&img, &a, NULL), TSR_OK);
        box w = white_box(&img);
        /* One line of text: 7 rows of capitals, no second row of characters. */
        assert_int_equal(w.y1 - w.y0 + 1, 7);
        /* Whole glyphs only: (256 - 2 * margin 3 + 1) / 6 = 41 of them, and neither text nor
         * outline in the two outermost columns on either side. */
        assert_int_equal(w.x1 - w.x0 + 1, 41 * RND_FONT_W - 1);
        for (uint32_t y = 0; y < img.height; y++) {
            static const uint32_t edge[] = {0, 1, 254, 255};
            for (size_t e = 0; e < 4; e++) {
                assert_int_equal(px(&img, edge[e], y), BG);
            }
        }
        /* The same as drawing just the characters that fit. */
        long fit = (w.x1 - w.x0 + 2) / RND_FONT_W;
        char shorter[256];
        memset(shorter, 'A', (size_t)fit);
        shorter[fit] = '\0';
        rnd_image ref = canvas(256, 100, 1, 4);
        rnd_annotation r = one_line((rnd_corner)k, shorter);
        assert_int_equal(rnd_annotate(&ref, &r, NULL), TSR_OK);
        assert_true(images_equal(&img, &ref));
        assert_padding_intact(&img);
        canvas_free(&img);
        canvas_free(&ref);
    }
}

/* Tiny and extreme images: never a write outside the image (AddressSanitizer watches the
 * exact-size buffers, the check below watches the stride padding). */
static void
tiny_images_are_safe(void **state)
{
    (void)state;
    static const uint32_t sizes[][2] = {{1, 1},  {2, 2},   {3, 7},    {8, 8},   {11, 11},
                                        {12, 5}, {1, 300}, {300, 1},  {16, 16}, {40, 12},
                                        {6, 10}, {9, 100}, {1030, 3}, {3, 1030}};
    rnd_annotation a;
    memset(&a, 0, sizeof a);
    for (int k = 0; k < RND_CORNER_COUNT; k++) {
        a.n[k] = RND_ANNOTATION_LINES;
        for (int i = 0; i < RND_ANNOTATION_LINES; i++) {
            a.lines[k][i] = i % 3 == 0 ? "gjpqy_|WM@ Jos\xc3\xa9 1234567890" : "Wg";
        }
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        for (uint8_t ch = 1; ch <= 3; ch += 2) {
            rnd_image img = canvas(sizes[i][0], sizes[i][1], ch, 3);
            tsr_err err = {0};
            if (rnd_annotate(&img, &a, &err) != TSR_OK) {
                fail_msg("%ux%u: %s", sizes[i][0], sizes[i][1], err.msg);
            }
            (void)changed(&img);
            assert_padding_intact(&img);
            canvas_free(&img);
        }
    }
    /* 8 lines per corner on 256 px: corners overlap, the outline rule still holds for text. */
    rnd_image img = canvas(256, 64, 3, 0);
    assert_int_equal(rnd_annotate(&img, &a, NULL), TSR_OK);
    assert_true(white_box(&img).n_white > 0);
    canvas_free(&img);
}

/* ---------------------------------------------------------------- errors */

static void
invalid_input(void **state)
{
    (void)state;
    rnd_image img = canvas(64, 64, 1, 0);
    rnd_annotation a = one_line(RND_CORNER_TOP_LEFT, "X");
    tsr_err err = {0};

    /* NULL annotation and empty annotation: nothing drawn. */
    assert_int_equal(rnd_annotate(&img, NULL, &err), TSR_OK);
    rnd_annotation none;
    memset(&none, 0, sizeof none);
    assert_int_equal(rnd_annotate(&img, &none, &err), TSR_OK);
    none.n[RND_CORNER_TOP_LEFT] = 3; /* three NULL lines */
    assert_int_equal(rnd_annotate(&img, &none, &err), TSR_OK);
    assert_int_equal(changed(&img).n_white + changed(&img).n_black, 0);

    assert_int_equal(rnd_annotate(NULL, &a, &err), TSR_EINVAL);
    assert_int_equal(err.code, TSR_EINVAL);
    assert_non_null(strstr(err.msg, "annotate"));

    rnd_annotation bad = a;
    bad.n[RND_CORNER_BOTTOM_RIGHT] = RND_ANNOTATION_LINES + 1;
    assert_int_equal(rnd_annotate(&img, &bad, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "lines"));
    bad.n[RND_CORNER_BOTTOM_RIGHT] = -1;
    assert_int_equal(rnd_annotate(&img, &bad, NULL), TSR_EINVAL);
    /* The image is untouched on failure, even though the top-left line was valid. */
    assert_int_equal(changed(&img).n_white, 0);

    img.channels = 2;
    assert_int_equal(rnd_annotate(&img, &a, &err), TSR_EINVAL);
    img.channels = 1;
    img.stride = 10;
    assert_int_equal(rnd_annotate(&img, &a, NULL), TSR_EINVAL);
    img.stride = 64;
    img.width = 0;
    assert_int_equal(rnd_annotate(&img, &a, NULL), TSR_EINVAL);
    img.width = 64;
    uint8_t *keep = img.data;
    img.data = NULL;
    assert_int_equal(rnd_annotate(&img, &a, NULL), TSR_EINVAL);
    img.data = keep;
    assert_int_equal(changed(&img).n_white, 0);
    canvas_free(&img);
}

TSR_TEST_MAIN(cmocka_unit_test(glyphs_distinct_and_inside_the_cell),
              cmocka_unit_test(glyph_substitution), cmocka_unit_test(utf8_drawn_as_question_marks),
              cmocka_unit_test(exact_glyph_pixels),
              cmocka_unit_test(each_corner_stays_in_its_corner), cmocka_unit_test(alignment),
              cmocka_unit_test(outline_surrounds_text), cmocka_unit_test(scale_from_image_size),
              cmocka_unit_test(long_lines_are_truncated_not_wrapped),
              cmocka_unit_test(tiny_images_are_safe), cmocka_unit_test(invalid_input))
